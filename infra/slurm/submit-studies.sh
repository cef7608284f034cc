#!/usr/bin/env bash
# Submit one array job that runs every study of a list (one name per line, # comments allowed):
#
#   infra/slurm/submit-studies.sh [-p MAX_PARALLEL] LIST [extra sbatch options...]
#
# Checks that pipelines/<study>.yaml exists for each name, then runs
#   sbatch --array=0-(N-1)%MAX_PARALLEL --export=ALL,STUDY_LIST=LIST infra/slurm/har-tune-array.sbatch
# from the repository root. MLFLOW_TRACKING_URI and HAR_STORAGE_PATH travel in the environment.
set -euo pipefail

usage() { echo "usage: $0 [-p MAX_PARALLEL] LIST [sbatch options...]" >&2; exit 2; }

parallel=4
while getopts "p:h" opt; do
    case "$opt" in
        p) parallel="$OPTARG" ;;
        *) usage ;;
    esac
done
shift $(( OPTIND - 1 ))
(( $# >= 1 )) || usage
[[ "$parallel" =~ ^[1-9][0-9]*$ ]] || { echo "$0: -p takes a positive number, got: $parallel" >&2; exit 2; }

list="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
shift
[[ -f "$list" ]] || { echo "$0: no study list at $list" >&2; exit 2; }
cd "$(dirname "$0")/../.."

mapfile -t studies < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$list" | grep -v '^$' || true)
(( ${#studies[@]} > 0 )) || { echo "$0: $list names no study" >&2; exit 2; }
for study in "${studies[@]}"; do
    [[ -f "pipelines/${study}.yaml" ]] || { echo "$0: no study file pipelines/${study}.yaml" >&2; exit 2; }
done
[[ -n "${MLFLOW_TRACKING_URI:-}" ]] || { echo "$0: set MLFLOW_TRACKING_URI (a tracking server)" >&2; exit 2; }

exec sbatch --array="0-$(( ${#studies[@]} - 1 ))%${parallel}" --export="ALL,STUDY_LIST=${list}" \
    "$@" infra/slurm/har-tune-array.sbatch
