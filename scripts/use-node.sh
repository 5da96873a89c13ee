# Put the pinned Node.js 24 LTS first on PATH, whatever `node` this machine has.
#
#   source scripts/use-node.sh        (bash or zsh; .ci/run does the same)
#
# The official binary comes from the npm registry package `node-linux-<arch>` (nothing is fetched
# from anywhere else) into a cache folder, once. npm_config_nodedir points node-gyp at the headers
# shipped in that package, so native addons (better-sqlite3) are built for this Node's ABI, never
# for a system Node's headers (which fail at load with a NODE_MODULE_VERSION mismatch).
QB_NODE_VERSION="${QB_NODE_VERSION:-24.22.3}"
qb_node_arch="$(uname -m)"
case "$qb_node_arch" in
  x86_64 | amd64) qb_node_arch=x64 ;;
  aarch64 | arm64) qb_node_arch=arm64 ;;
  *) echo "use-node: no node-linux package for $(uname -m); install Node.js 24 yourself" >&2 ;;
esac
qb_node_home="${QB_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/quantum-bot}/node-v${QB_NODE_VERSION}-linux-${qb_node_arch}"
if [ ! -x "$qb_node_home/bin/node" ]; then
  qb_node_tmp="$(mktemp -d)"
  echo "use-node: fetching node-linux-${qb_node_arch}@${QB_NODE_VERSION} from the npm registry" >&2
  if (cd "$qb_node_tmp" && npm pack --silent "node-linux-${qb_node_arch}@${QB_NODE_VERSION}" >/dev/null) &&
    mkdir -p "$qb_node_home.partial" &&
    tar xzf "$qb_node_tmp"/node-linux-*.tgz -C "$qb_node_home.partial" --strip-components=1; then
    # Rename last, so an interrupted download is never taken for a finished one.
    rm -rf "$qb_node_home" && mv "$qb_node_home.partial" "$qb_node_home"
  else
    echo "use-node: could not install Node.js ${QB_NODE_VERSION}" >&2
    rm -rf "$qb_node_home.partial"
  fi
  rm -rf "$qb_node_tmp"
fi
if [ -x "$qb_node_home/bin/node" ]; then
  case ":$PATH:" in
    *":$qb_node_home/bin:"*) ;;
    *) export PATH="$qb_node_home/bin:$PATH" ;;
  esac
  export npm_config_nodedir="$qb_node_home"
fi
unset qb_node_arch qb_node_tmp qb_node_home
