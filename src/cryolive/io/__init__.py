"""Readers and writers of the files cryolive meets: movies, micrographs, metadata, images."""
