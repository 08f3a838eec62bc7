"""plasticsim analysis: information measures, spectra, receptive fields (read results, never live state)."""
