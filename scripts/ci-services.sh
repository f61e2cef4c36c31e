#!/usr/bin/env bash
# Install and start what the integration tests need, before CI runs them.
#
# - chromium (Debian's) for tests/integration/test_report_browser.py.
# - Slurm (Debian's slurm-wlm) and MUNGE for tests/integration/test_slurm.py. The test itself
#   starts a private single-node slurmctld/slurmd with its own slurm.conf and stops them; this
#   script only makes sure the binaries are installed and munged (authentication) is running.
#
# Idempotent and fast when everything is already there. It never fails CI: without apt-get
# (or without root) it says so and the Slurm test is skipped, while the generated batch script
# is still checked by tests/schedule/test_executor_slurm.py.
set -u

log() { echo "ci-services: $*" >&2; }

SLURM_BINARIES="slurmctld slurmd sbatch scontrol scancel sinfo munged munge unmunge"
export PATH="$PATH:/usr/sbin:/sbin"

missing_slurm() {
  for b in $SLURM_BINARIES; do
    command -v "$b" >/dev/null 2>&1 || return 0
  done
  return 1
}

as_root() {
  if [ "$(id -u)" = 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo -n "$@"
  else
    return 1
  fi
}

install_slurm() {
  command -v apt-get >/dev/null 2>&1 || { log "no apt-get: cannot install Slurm"; return 1; }
  local apt_log
  apt_log="$(mktemp)"
  if ! as_root env DEBIAN_FRONTEND=noninteractive timeout 900 \
      apt-get install -y --no-install-recommends slurm-wlm munge >"$apt_log" 2>&1; then
    log "apt-get install failed; refreshing the package lists and trying once more"
    as_root timeout 300 apt-get update >>"$apt_log" 2>&1 || true
    as_root env DEBIAN_FRONTEND=noninteractive timeout 900 \
      apt-get install -y --no-install-recommends slurm-wlm munge >>"$apt_log" 2>&1 || {
        log "could not install slurm-wlm/munge (see $apt_log)"
        return 1
      }
  fi
  rm -f "$apt_log"
}

munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munged() {
  if [ ! -s /etc/munge/munge.key ]; then
    if command -v mungekey >/dev/null 2>&1; then
      as_root mungekey --create --keyfile=/etc/munge/munge.key >/dev/null 2>&1 || true
    else
      as_root sh -c 'dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null' || true
    fi
    as_root chown munge:munge /etc/munge/munge.key 2>/dev/null || true
    as_root chmod 0400 /etc/munge/munge.key 2>/dev/null || true
  fi
  as_root mkdir -p /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
  as_root chown munge:munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
  as_root runuser -u munge -- munged >/dev/null 2>&1 \
    || as_root munged --force >/dev/null 2>&1 \
    || true
  for _ in $(seq 1 50); do
    munge_ok && return 0
    sleep 0.2
  done
  return 1
}

if missing_slurm; then
  log "installing Slurm and MUNGE for the Slurm executor test"
  install_slurm || log "Slurm unavailable: the Slurm integration test will be skipped"
fi

if ! missing_slurm; then
  if munge_ok; then
    log "munged already running"
  elif start_munged; then
    log "munged started"
  else
    log "munged did not start: the Slurm integration test will report it"
  fi
fi

# Debian's chromium for tests/integration/test_report_browser.py (the HTML report rendered in a
# real headless browser). That test fails with a clear message when chromium is missing.
if ! command -v chromium >/dev/null 2>&1; then
  log "installing chromium for the HTML report browser test"
  if command -v apt-get >/dev/null 2>&1; then
    as_root env DEBIAN_FRONTEND=noninteractive timeout 900 \
        apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 \
      || { as_root timeout 300 apt-get update -qq >/dev/null 2>&1 || true
           as_root env DEBIAN_FRONTEND=noninteractive timeout 900 \
             apt-get install -y --no-install-recommends chromium >/dev/null 2>&1; } \
      || log "could not install chromium: the report browser test will fail and say so"
  else
    log "no apt-get: cannot install chromium; the report browser test will fail and say so"
  fi
fi

exit 0
