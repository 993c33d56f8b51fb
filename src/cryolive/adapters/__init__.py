"""Adapters to the external programs a facility may have (CTFFIND, RELION): each writes the
program's input files, runs it as a process and reads its output back into an engine's result
type. The engines stay pure (arrays in, frozen result out); everything with files and processes
for a program lives here, one subpackage per program."""
