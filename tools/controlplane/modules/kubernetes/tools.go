//go:build tools

// Package tools pins the Kubernetes commands that build.sh builds from this
// wrapper module (kube-apiserver and kubectl; with --node also the kubelet,
// kube-proxy, kube-scheduler and kube-controller-manager). It is never compiled: the build
// tag keeps it out of builds, while `go mod tidy` still records the
// dependencies of both commands in go.mod and go.sum.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
