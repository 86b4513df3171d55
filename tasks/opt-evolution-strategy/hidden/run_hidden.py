"""Entry point of the settings that need the extra objectives in hidden_functions.py."""

import hidden_functions
import run

if __name__ == "__main__":
    run.main(extra_builders=hidden_functions.BUILDERS)
