// Package k8s holds Shoal's Kubernetes manifests (*.yaml, applied with
// kubectl apply -k deploy/k8s) and the provisioner hook that scales the
// storage StatefulSet (provisioner.sh). Its tests decode every manifest
// strictly into the Kubernetes API types and check the references between
// them; they need no cluster. It is a module of its own so that the
// Kubernetes API modules stay out of the shoal module's dependencies.
package k8s
