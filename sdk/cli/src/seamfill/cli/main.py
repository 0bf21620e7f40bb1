"""The ``seamfill`` command. Its groups come from the ``seamfill.cli`` entry points of whichever
seamfill distributions are installed (sdk: admin, health, demo; coordinator; worker)."""

from __future__ import annotations

import sys
from importlib.metadata import entry_points

import click

from seamfill.core.errors import SeamfillError


class _Groups(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({ep.name for ep in entry_points(group="seamfill.cli")})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        for ep in entry_points(group="seamfill.cli"):
            if ep.name == cmd_name:
                cmd = ep.load()
                assert isinstance(cmd, click.Command)
                return cmd
        return None


@click.group(cls=_Groups, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="seamfill-sdk", prog_name="seamfill")
def cli() -> None:
    """seamfill: keep market-data history in QuestDB complete."""


def main() -> None:
    """Entry point: seamfill's own errors print as ``ErrorName: message`` and exit 1."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.UsageError as e:
        e.show()
        sys.exit(2)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except SeamfillError as e:
        click.echo(f"{type(e).__name__}: {e.message}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
