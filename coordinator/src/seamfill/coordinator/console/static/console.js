// seamfill console: live refresh of the page's main part and the action buttons.
// Loaded from this origin only (the CSP forbids inline script). Server answers are HTML the
// server escaped, or JSON whose text is shown with textContent, never parsed as HTML.
"use strict";

const REFRESH_MS = 1500;

function flash(text, ok) {
  const el = document.getElementById("flash");
  if (!el) return;
  el.textContent = text;
  el.className = ok ? "ok" : "error";
}

async function refresh() {
  const main = document.getElementById("live");
  if (!main || !main.dataset.refresh) return;
  // Never replace a form the user is typing in.
  if (main.contains(document.activeElement) && document.activeElement.tagName === "INPUT") return;
  try {
    const resp = await fetch(main.dataset.refresh, { credentials: "same-origin" });
    if (resp.status === 401) {
      flash("Logged out: log in again to see live data.", false);
      return;
    }
    if (resp.ok) {
      main.innerHTML = await resp.text();
      main.dataset.updated = String(Date.now());
    }
  } catch (e) {
    flash("The coordinator does not answer: " + e, false);
  }
}

async function act(button) {
  button.disabled = true;
  try {
    const resp = await fetch(button.dataset.url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-Seamfill-Console": "1" },
      body: button.dataset.body || "{}",
    });
    let answer = {};
    try {
      answer = await resp.json();
    } catch (e) {
      answer = { error: resp.statusText };
    }
    if (resp.ok) {
      flash(answer.message || "done", true);
    } else {
      flash(resp.status + ": " + (answer.error || resp.statusText), false);
    }
  } finally {
    button.disabled = false;
    refresh();
  }
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button.act");
  if (button) {
    event.preventDefault();
    act(button);
  }
});

setInterval(refresh, REFRESH_MS);
