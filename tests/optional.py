"""Optional test dependencies, looked up once for every test file that needs them."""

try:
    import mediapipe  # noqa: F401  (installed with --no-deps by scripts/setup_env.sh; see install.py)

    HAVE_MEDIAPIPE = True
except ImportError:
    HAVE_MEDIAPIPE = False
