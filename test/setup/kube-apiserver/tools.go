//go:build tools

// Package tools pins kube-apiserver for the operator's integration tests.
package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
