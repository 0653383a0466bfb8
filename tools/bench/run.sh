#!/bin/sh
# The benchmark harness with Debian's interpreter (torch 1.13, numpy, onnx). See README.md.
exec /usr/bin/python3 "$(dirname "$0")/run.py" "$@"
