"""Optional test dependencies, looked up once for every test file that needs them."""

try:
    import mediapipe  # noqa: F401  (installed with --no-deps by scripts/setup_env.sh; see install.py)

    HAVE_MEDIAPIPE = True
except ImportError:
    HAVE_MEDIAPIPE = False


def missing(message: str):
    """Something the set-up script provides is not here: a failure in CI (where it must be), a skip on a
    developer's machine without it."""
    import os

    import pytest

    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def chromium_path() -> str | None:
    """Debian's chromium (or PIDM_CHROMIUM) for the browser tests."""
    import os
    import shutil

    return os.environ.get("PIDM_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
