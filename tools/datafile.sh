#!/usr/bin/env bash
# tools/datafile.sh PATH: print where the data file PATH (relative to a data folder, e.g.
# vocab/bert-base-uncased/vocab.txt) is, taking the first that exists of $SEMBED_DATA_DIR/PATH,
# data/PATH in this repository, ../shared/data/PATH beside it (data/README.md). Exit 1, naming
# every place it looked, when none exists; 2 on bad usage.
# In a script: f=$(tools/datafile.sh sts/STSBenchmark/sts-dev.csv) || exit 1
set -u
if [ $# -ne 1 ] || [ -z "$1" ] || [ "${1#-}" != "$1" ]; then
  echo "usage: tools/datafile.sh PATH   (PATH relative to a data folder, e.g. vocab/bert-base-uncased/vocab.txt)" >&2
  exit 2
fi
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tried=""
for dir in ${SEMBED_DATA_DIR:+"$SEMBED_DATA_DIR"} "$root/data" "$root/../shared/data"; do
  if [ -f "$dir/$1" ]; then
    printf '%s\n' "$dir/$1"
    exit 0
  fi
  tried="$tried $dir/$1"
done
echo "datafile: $1 not found; looked at:$tried (data/README.md says what lives where)" >&2
exit 1
