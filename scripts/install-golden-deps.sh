#!/bin/sh
# Installs what scripts/gen-golden.py needs: Debian's PyTorch, scikit-learn and NumPy for the
# system interpreter (/usr/bin/python3). Idempotent: does nothing when all three are installed, and
# runs `apt-get update` only when something is missing.
set -eu

PKGS="python3-torch python3-sklearn python3-numpy"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    echo "install-golden-deps: already installed:$(printf ' %s' $PKGS)"
else
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    echo "install-golden-deps: installing:$missing"
    # Wait for another apt/dpkg run holding the lock instead of failing.
    $SUDO apt-get -o DPkg::Lock::Timeout=900 update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=900 install -y --no-install-recommends $missing
fi

/usr/bin/python3 -c 'import torch, sklearn, numpy; print("torch", torch.__version__, "sklearn", sklearn.__version__, "numpy", numpy.__version__)'
