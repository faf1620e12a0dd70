"""Protocol buffer definitions written for this project and their generated modules.

The ``.proto`` files here mirror the field numbers of BuildKit's and fsutil's
definitions; ``scripts/gen-proto`` regenerates the ``*_pb2*.py`` modules.
"""
