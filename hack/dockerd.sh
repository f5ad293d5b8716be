#!/usr/bin/env bash
# A private dockerd for offline image builds: own data-root (cached outside the repo), own
# exec-root and socket, no bridge and no iptables (builds run with --network none).
#   hack/dockerd.sh start|stop|status|env
# `eval "$(hack/dockerd.sh env)"` points the docker CLI at it. Set FLOWCRAFT_DOCKER=system to
# use the machine's usual docker daemon instead (e.g. with kind); then start/stop do nothing.
source "$(dirname "$0")/lib.sh"

DOCKERD_RUN=${DOCKERD_RUN:-/run/flowcraft-dockerd}
DOCKERD_DATA=$FLOWCRAFT_CACHE/docker
SOCK=$DOCKERD_RUN/docker.sock
PIDFILE=$DOCKERD_RUN/dockerd.pid

alive() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

case ${1:-status} in
  env)
    if [ "${FLOWCRAFT_DOCKER:-}" = system ]; then echo "export DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-1}"; exit 0; fi
    echo "export DOCKER_HOST=unix://$SOCK DOCKER_BUILDKIT=0" ;;
  start)
    [ "${FLOWCRAFT_DOCKER:-}" = system ] && exit 0
    if alive && DOCKER_HOST=unix://$SOCK docker version >/dev/null 2>&1; then log "dockerd already running (pid $(cat "$PIDFILE"))"; exit 0; fi
    apt_install docker.io
    mkdir -p "$DOCKERD_RUN" "$DOCKERD_DATA" "$FLOWCRAFT_CACHE/logs"
    rm -f "$PIDFILE" "$SOCK"
    setsid /usr/sbin/dockerd --data-root "$DOCKERD_DATA" --exec-root "$DOCKERD_RUN/exec" \
      -H "unix://$SOCK" --pidfile "$PIDFILE" --bridge=none --iptables=false --ip-masq=false \
      --ip-forward=false --userland-proxy=false --storage-driver=overlay2 \
      >"$FLOWCRAFT_CACHE/logs/dockerd.log" 2>&1 < /dev/null &
    for _ in $(seq 1 60); do
      DOCKER_HOST=unix://$SOCK docker version >/dev/null 2>&1 && { log "dockerd up (pid $(cat "$PIDFILE"))"; exit 0; }
      sleep 0.5
    done
    tail -20 "$FLOWCRAFT_CACHE/logs/dockerd.log" >&2; die "dockerd did not start" ;;
  stop)
    [ "${FLOWCRAFT_DOCKER:-}" = system ] && exit 0
    if alive; then
      pid=$(cat "$PIDFILE"); kill "$pid"
      for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -0 "$pid" 2>/dev/null && { log "dockerd $pid still alive, SIGKILL"; kill -9 "$pid"; }
      log "dockerd stopped"
    fi
    rm -f "$PIDFILE" ;;
  status) alive && echo "running pid $(cat "$PIDFILE") sock $SOCK" || { echo stopped; exit 1; } ;;
  *) die "usage: $0 start|stop|status|env" ;;
esac
