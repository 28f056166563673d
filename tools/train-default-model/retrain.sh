#!/usr/bin/env bash
# The exact run that produced weights/ (about 90 minutes on two cores). Each stage is budgeted in wall-clock
# minutes, so a slower or busier machine takes fewer steps and ends with somewhat different weights.
set -euo pipefail
cd "$(dirname "$0")"
P=${PYTHON:-/usr/bin/python3}
mkdir -p work
[[ -f work/spiece.model ]] || $P train.py --stage tokenizer
rm -f work/vae.pt work/dit.pt   # start from scratch (a stage resumes from its checkpoint when one exists)
$P train.py --stage vae --vae-minutes 20 --vae-batch 8
$P train.py --stage vae --vae-minutes 12 --vae-batch 8 --vae-lr 4e-4      # continues work/vae.pt
$P train.py --stage latents --latent-clips 10000
$P train.py --stage dit --dit-minutes 25 --batch 64
$P train.py --stage dit --dit-minutes 15 --batch 64 --dit-lr 3e-4        # continues work/dit.pt
$P train.py --stage dit --dit-minutes 14 --batch 64 --dit-lr 2e-4        # continues work/dit.pt
$P train.py --stage export
$P evaluate.py
