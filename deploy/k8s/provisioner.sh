#!/bin/sh
# Shoal's provisioner hook for Kubernetes: run by the manager leader as
# --provisioner-command when a scale-out is due and the standby pool is
# short (contract: docs/operations.md, "The provisioner hook"). It raises
# the storage StatefulSet's replicas by SHOAL_PROVISION_NODES and exits;
# the new pods register with the managers on their own.
#
# Environment (besides the hook's SHOAL_PROVISION_*):
#   SHOAL_K8S_STATEFULSET   the storage StatefulSet (default shoal-node)
#   SHOAL_K8S_NAMESPACE     its namespace (default: kubectl's, in a pod its own)
#   SHOAL_K8S_MAX_REPLICAS  never scale above this (default 100)
#   KUBECTL                 the kubectl command (default kubectl)
set -eu

sts=${SHOAL_K8S_STATEFULSET:-shoal-node}
max=${SHOAL_K8S_MAX_REPLICAS:-100}
kubectl=${KUBECTL:-kubectl}
want=${SHOAL_PROVISION_NODES:-}

case $want in
'' | *[!0-9]*) echo "provisioner: SHOAL_PROVISION_NODES must be a positive number, got '$want'" >&2; exit 2 ;;
esac
case $max in
'' | *[!0-9]*) echo "provisioner: SHOAL_K8S_MAX_REPLICAS must be a number, got '$max'" >&2; exit 2 ;;
esac
if [ "$want" -eq 0 ]; then
	echo "provisioner: SHOAL_PROVISION_NODES is 0, nothing to do"
	exit 0
fi

ns=
if [ -n "${SHOAL_K8S_NAMESPACE:-}" ]; then
	ns="--namespace=$SHOAL_K8S_NAMESPACE"
fi

# shellcheck disable=SC2086 # $ns is empty or one word
cur=$($kubectl $ns get "statefulset/$sts" -o 'jsonpath={.spec.replicas}')
case $cur in
'' | *[!0-9]*) echo "provisioner: cannot read the replicas of statefulset/$sts: '$cur'" >&2; exit 1 ;;
esac
next=$((cur + want))
if [ "$next" -gt "$max" ]; then
	if [ "$cur" -ge "$max" ]; then
		echo "provisioner: statefulset/$sts has $cur replicas, SHOAL_K8S_MAX_REPLICAS is $max: not scaling (${SHOAL_PROVISION_REASON:-no reason given})" >&2
		exit 1
	fi
	echo "provisioner: capping at SHOAL_K8S_MAX_REPLICAS=$max (wanted $next)" >&2
	next=$max
fi
echo "provisioner: statefulset/$sts $cur -> $next replicas (${SHOAL_PROVISION_REASON:-no reason given})"
# --current-replicas: if someone else scaled it since the read, fail (the
# autoscaler runs the hook again later) rather than undo their change.
# shellcheck disable=SC2086
exec $kubectl $ns scale "statefulset/$sts" --current-replicas="$cur" --replicas="$next"
