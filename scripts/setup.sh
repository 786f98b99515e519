# Sourced by ./demo, ./run-tests and .ci/run: installs what is missing, then the package into .venv.
# Usage: . scripts/setup.sh [test]   ("test" adds the test extras)
# Debian/Ubuntu only for the system tools; run as root or with sudo available.

_need=()
command -v python3 >/dev/null || _need+=(python3)
python3 -c 'import ensurepip, venv' 2>/dev/null || _need+=(python3-venv)
command -v skopeo >/dev/null || _need+=(skopeo)
command -v docker-registry >/dev/null || _need+=(docker-registry)
if [ "${1:-}" = test ]; then
  command -v htpasswd >/dev/null || _need+=(apache2-utils)
  command -v openssl >/dev/null || _need+=(openssl)
fi
if ((${#_need[@]})); then
  _sudo=()
  [ "$(id -u)" -eq 0 ] || _sudo=(sudo)
  echo "setup: installing ${_need[*]} with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  "${_sudo[@]}" apt-get update -qq
  "${_sudo[@]}" apt-get install -y -qq "${_need[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
_extras=""
[ "${1:-}" = test ] && _extras="[test]"
# Reinstall only when the project's metadata changed (a stamp keyed by pyproject.toml and the extras).
_stamp=".venv/.installed-$( (cat pyproject.toml; echo "$_extras") | sha256sum | cut -c1-16)"
if [ ! -e "$_stamp" ]; then
  echo "setup: installing registry-gate$_extras into .venv" >&2
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".$_extras"
  rm -f .venv/.installed-*
  touch "$_stamp"
fi
# Byte-compile the package: the editable install has no .pyc, and where PYTHONDONTWRITEBYTECODE is set every run
# would otherwise compile it again (about 40 ms of each start).
.venv/bin/python -m compileall -q gate >/dev/null
unset _need _sudo _extras _stamp
