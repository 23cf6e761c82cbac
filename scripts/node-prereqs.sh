# Sourced by scripts/test-node.sh and scripts/demo.sh --node: what a node that runs pods needs
# from Debian beyond scripts/prereqs.sh, installed with apt-get when missing if we are root,
# else said. containerd and runc run the pods, buildah builds the images (no registry is
# reachable), the CNI plugins make the bridge network, iptables is kube-proxy's, gcc builds the
# pause binary, iproute2 the bridge. A node needs root (namespaces, cgroups, iptables).
ferrum_node_need=()
command -v containerd >/dev/null || ferrum_node_need+=(containerd)
command -v runc >/dev/null || ferrum_node_need+=(runc)
command -v buildah >/dev/null || ferrum_node_need+=(buildah)
[ -x /usr/lib/cni/bridge ] || ferrum_node_need+=(containernetworking-plugins)
command -v iptables >/dev/null || ferrum_node_need+=(iptables)
command -v gcc >/dev/null || ferrum_node_need+=(gcc)
command -v ip >/dev/null || ferrum_node_need+=(iproute2)
if [ "$(id -u)" != 0 ]; then
  echo "a node needs root (network namespaces, cgroups, iptables)" >&2
  exit 1
fi
if [ ${#ferrum_node_need[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${ferrum_node_need[@]}"
  else
    echo "missing: ${ferrum_node_need[*]}; install them, e.g.: apt-get install ${ferrum_node_need[*]}" >&2
    exit 1
  fi
fi
unset ferrum_node_need
