# Shared by the end-to-end bench scripts (source it): a scratch directory `$work` removed at exit,
# `pids` killed at exit (append every background process: `pids+=($!)`), and `free_port`.

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

# A free loopback port: `free_port` (TCP) or `free_port udp`.
free_port() {
  local kind=SOCK_STREAM
  [ "${1:-tcp}" = udp ] && kind=SOCK_DGRAM
  python3 -c 'import socket,sys; s=socket.socket(socket.AF_INET, getattr(socket, sys.argv[1])); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' "$kind"
}
