"""Files a processing stage writes from an engine's result, for people and for the database rows
that point at them: one module per stage (``motioncorr``, ``ctf`` with ice, ``class2d``), the
same files whether the service or the by-hand command writes them. Images go through
:mod:`cryolive.io.png`; picking's and extraction's files are :mod:`cryolive.io.particle_files`."""
