"""Run the hidden setting: python run_hidden.py --setting LABEL   (final evaluation only)."""
import sys

if __name__ == "__main__":
    import harness
    import hidden_settings

    sys.exit(harness.main(hidden_settings.SETTINGS))
