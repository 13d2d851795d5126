//go:build tools

// Package tools pins the node components of the cluster test
// (test/setup/cluster/up.sh): the control plane beside kube-apiserver, the
// kubelet, kube-proxy and kubectl, all at the apiserver's version.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
