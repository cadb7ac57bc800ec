package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
)

// The Cartridge double (tests/tarantool/cartridge_double.lua) plays the
// Tarantool instance of every pod the operator creates. The agent tells it
// which pods are up through marker files, one per pod, in a directory the
// double polls: desired state in files rather than calls, so the agent and
// the double can start, stop and restart in any order and converge.
const (
	labelManagedBy = "app.kubernetes.io/managed-by"
	operatorName   = "tarantool-operator"
	// envRunDir is where the operator's console command looks for the
	// instance's control socket: `tarantoolctl connect ${TARANTOOL_RUN_DIR:-/var/run/tarantool}/<pod>.control`.
	envRunDir = "TARANTOOL_RUN_DIR"
	// A unix socket path has at most 107 bytes (sun_path is 108 with the NUL).
	maxSocketPath = 107
)

// marker is what the double reads: serve a console for instance `Pod` of the
// cluster in `Namespace` at `Socket`.
type marker struct {
	Namespace string `json:"namespace"`
	Pod       string `json:"pod"`
	Socket    string `json:"socket"`
}

// runDir is the pod's TARANTOOL_RUN_DIR. Under the work dir the socket path
// (…/pods/<namespace>/<pod>/run/<pod>.control) easily passes the 107-byte
// limit of a unix socket path with test namespaces and StatefulSet pod names,
// so with a run root (a short dir, e.g. /tmp/tod-<hash>) it is
// <run root>/<8 hex digits of namespace/pod>: at most 18+len(root) bytes plus
// the socket name, the same dir for a re-created pod of the same name.
func runDir(runRoot, workDir, namespace, pod string) string {
	if runRoot == "" {
		return filepath.Join(workDir, "run")
	}
	sum := sha256.Sum256([]byte(namespace + "/" + pod))
	return filepath.Join(runRoot, hex.EncodeToString(sum[:4]))
}

// ensureRunDir creates the pod's run dir and, when it lives outside the work
// dir, a `run` symlink to it in the work dir (to find the socket by pod).
func ensureRunDir(dir, workDir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	link := filepath.Join(workDir, "run")
	if dir == link {
		return nil
	}
	if cur, err := os.Readlink(link); err == nil && cur == dir {
		return nil
	}
	_ = os.Remove(link)
	return os.Symlink(dir, link)
}

func socketPath(dir, pod string) string { return filepath.Join(dir, pod+".control") }

// wantsInstance: the double serves a pod's instance while the pod is one of
// the operator's, scheduled, Running and not being deleted (a deleted pod is
// a stopped instance; a new pod of the same name brings it back).
func wantsInstance(pod *corev1.Pod) bool {
	return pod.Labels[labelManagedBy] == operatorName && pod.DeletionTimestamp == nil &&
		pod.Spec.NodeName != "" && pod.Status.Phase == corev1.PodRunning
}

func markerPath(dir, namespace, pod string) string {
	// Namespaces and pod names cannot contain '_': the name is unambiguous.
	return filepath.Join(dir, namespace+"_"+pod+".json")
}

// syncMarker writes (atomically, only when it changes) or removes the
// marker of a pod. pod == nil means the pod is gone.
func syncMarker(dir, namespace, name string, pod *corev1.Pod, socket string) error {
	path := markerPath(dir, namespace, name)
	if pod == nil || !wantsInstance(pod) {
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			return err
		}
		return nil
	}
	if len(socket) > maxSocketPath {
		return fmt.Errorf("socket path %s is %d bytes, a unix socket path has at most %d (use a shorter --run-root)",
			socket, len(socket), maxSocketPath)
	}
	data, err := json.Marshal(marker{Namespace: namespace, Pod: name, Socket: socket})
	if err != nil {
		return err
	}
	if cur, err := os.ReadFile(path); err == nil && bytes.Equal(cur, data) {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path) // the double never reads a half-written marker
}
