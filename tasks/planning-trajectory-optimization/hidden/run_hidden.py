"""Run the hidden setting's episode (copied into the scaffold at the final evaluation only)."""

import harness


def main():
    from env_hidden import Acrobot

    harness.main(Acrobot, "acrobot")


if __name__ == "__main__":
    main()
