package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func operatorPod(phase corev1.PodPhase) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "storage-0-7dfd9f68f-1", Namespace: "ns",
			Labels: map[string]string{labelManagedBy: operatorName, "tarantool.io/cluster": "c"}},
		Spec:   corev1.PodSpec{NodeName: "kwok-node-0"},
		Status: corev1.PodStatus{Phase: phase},
	}
}

func TestRunDirFitsASocketPathAndIsStablePerPod(t *testing.T) {
	pod := strings.Repeat("p", 63) // the longest pod name a StatefulSet can make
	root := "/tmp/tod-0123abcd"
	d := runDir(root, "/long/work/dir/pods/ns/"+pod, "a-namespace-of-a-test-with-a-long-name-1234567-1", pod)
	if s := socketPath(d, pod); len(s) > maxSocketPath {
		t.Errorf("socket path %s is %d bytes, more than %d", s, len(s), maxSocketPath)
	}
	if runDir(root, "w", "ns", "x") != runDir(root, "other", "ns", "x") {
		t.Error("a re-created pod must get the same run dir")
	}
	if runDir(root, "w", "ns1", "x") == runDir(root, "w", "ns2", "x") {
		t.Error("pods of the same name in two namespaces must not share a run dir")
	}
	if got := runDir("", "/w/ns/x", "ns", "x"); got != "/w/ns/x/run" {
		t.Errorf("without a run root: %s", got)
	}
}

func TestExecEnvHasOneRunDirOverridingTheImages(t *testing.T) {
	pod := operatorPod(corev1.PodRunning)
	pod.Spec.Containers = []corev1.Container{{Name: "tarantool",
		Env: []corev1.EnvVar{{Name: envRunDir, Value: "/var/run/tarantool"}}}}
	n := 0
	for _, e := range podEnv(pod, &pod.Spec.Containers[0], "/w", "/r/1") {
		if e["name"] == envRunDir {
			n++
			if e["value"] != "/r/1" {
				t.Errorf("%s = %v", envRunDir, e["value"])
			}
		}
	}
	if n != 1 {
		t.Errorf("%d %s entries, want exactly one", n, envRunDir)
	}
}

func TestInstanceOnlyForRunningOperatorPods(t *testing.T) {
	deleting := operatorPod(corev1.PodRunning)
	deleting.DeletionTimestamp = &metav1.Time{}
	foreign := operatorPod(corev1.PodRunning)
	foreign.Labels[labelManagedBy] = "helm"
	unscheduled := operatorPod(corev1.PodRunning)
	unscheduled.Spec.NodeName = ""
	for name, c := range map[string]struct {
		pod  *corev1.Pod
		want bool
	}{
		"running":     {operatorPod(corev1.PodRunning), true},
		"pending":     {operatorPod(corev1.PodPending), false},
		"deleting":    {deleting, false},
		"not ours":    {foreign, false},
		"unscheduled": {unscheduled, false},
	} {
		if got := wantsInstance(c.pod); got != c.want {
			t.Errorf("%s: wantsInstance = %v, want %v", name, got, c.want)
		}
	}
}

func TestMarkerFollowsThePod(t *testing.T) {
	dir := t.TempDir()
	pod := operatorPod(corev1.PodRunning)
	path := markerPath(dir, pod.Namespace, pod.Name)
	if err := syncMarker(dir, pod.Namespace, pod.Name, pod, "/r/1/x.control"); err != nil {
		t.Fatal(err)
	}
	var m marker
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("no marker for a Running operator pod: %v", err)
	}
	if err := json.Unmarshal(data, &m); err != nil || m != (marker{"ns", pod.Name, "/r/1/x.control"}) {
		t.Errorf("marker %s: %+v %v", data, m, err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	pod.DeletionTimestamp = &metav1.Time{}
	if err := syncMarker(dir, pod.Namespace, pod.Name, pod, "/r/1/x.control"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("the marker of a deleting pod must be gone: %v", err)
	}
	if err := syncMarker(dir, pod.Namespace, pod.Name, nil, ""); err != nil {
		t.Errorf("removing a missing marker: %v", err)
	}
	long := "/" + strings.Repeat("d", 120) + "/x.control"
	if err := syncMarker(dir, "ns", "x", operatorPod(corev1.PodRunning), long); err == nil ||
		!strings.Contains(err.Error(), "at most 107") {
		t.Errorf("a socket path over the limit must be refused clearly, got %v", err)
	}
}

func TestEnsureRunDirLinksFromTheWorkDir(t *testing.T) {
	base := t.TempDir()
	work, run := filepath.Join(base, "w"), filepath.Join(base, "r", "ab")
	if err := os.MkdirAll(work, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ { // idempotent
		if err := ensureRunDir(run, work); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := os.Readlink(filepath.Join(work, "run")); err != nil || got != run {
		t.Errorf("run link -> %q, %v", got, err)
	}
}
