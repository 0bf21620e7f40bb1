"""Data quality: the conformance pipeline and its rules (``conformance``) and the canonical row
fingerprint (``fingerprint``).

Pure: imports ``seamfill.core``, pandas, numpy and the SDK's presets only — no I/O library.
"""
