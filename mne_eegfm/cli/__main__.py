"""``python -m mne_eegfm.cli``: the ``mne-eegfm`` command line."""

from . import main

if __name__ == "__main__":  # pragma: no cover
    main()
