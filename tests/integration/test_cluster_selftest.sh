#!/usr/bin/env bash
# test_cluster_selftest.sh - the namespace cluster that the agent, aggregator
# and demo tests build on behaves like a Kubernetes cluster (Pods, ClusterIP
# and NodePort Services, masquerade, conntrack in every node): runs
# tests/cluster/selftest.sh, which skips (77) where it cannot run.
exec "$(dirname "$0")/../cluster/selftest.sh"
