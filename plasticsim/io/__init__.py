"""Reading and writing results files (the documented HDF5 layout)."""
