#!/bin/bash
# Runs the same jaxaffect command on every worker of a Cloud TPU pod slice.
#   launch/tpu_pod.sh TPU_NAME ZONE configs/perr/smta.py:data=erato gs://bucket/runs/smta_t
# Every worker must have the project installed and read the same data_dir (e.g. a GCS bucket).
# JAX discovers the pod itself (JAXAFFECT_COORDINATOR=auto). Not exercised by the test suite.
set -euo pipefail
TPU=${1:?tpu name}; ZONE=${2:?zone}; CONFIG=${3:?config spec}; WORKDIR=${4:?workdir}
shift 4
gcloud compute tpus tpu-vm ssh "$TPU" --zone "$ZONE" --worker=all --command \
  "JAXAFFECT_COORDINATOR=auto jaxaffect train --config '$CONFIG' --workdir '$WORKDIR' $*"
