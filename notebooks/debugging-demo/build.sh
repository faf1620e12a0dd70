#!/bin/sh
# A stand-in for a build (tutorial 04): several log lines, one output file.
set -e
cd /src
echo "compiling main.c with include/config.h"
cat include/config.h main.c > app.c
echo "linking app"
cp app.c app
echo "built /src/app ($(wc -l < app) lines)"
