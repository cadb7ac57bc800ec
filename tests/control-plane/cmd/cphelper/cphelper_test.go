package main

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestCertsChainToTheCA(t *testing.T) {
	dir := t.TempDir()
	if err := writeCerts(dir); err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(readCert(t, filepath.Join(dir, "ca.crt")))
	for _, c := range []struct {
		name, host string
		usage      x509.ExtKeyUsage
	}{
		{"apiserver", "kubernetes.default.svc", x509.ExtKeyUsageServerAuth},
		{"apiserver", "127.0.0.1", x509.ExtKeyUsageServerAuth},
		{"kwok", "127.0.0.1", x509.ExtKeyUsageServerAuth},
		{"admin", "", x509.ExtKeyUsageClientAuth},
	} {
		cert := readCert(t, filepath.Join(dir, c.name+".crt"))
		opts := x509.VerifyOptions{Roots: roots, DNSName: c.host, KeyUsages: []x509.ExtKeyUsage{c.usage}}
		if _, err := cert.Verify(opts); err != nil {
			t.Errorf("%s for %q: %v", c.name, c.host, err)
		}
	}
	admin := readCert(t, filepath.Join(dir, "admin.crt"))
	if len(admin.Subject.Organization) != 1 || admin.Subject.Organization[0] != "system:masters" {
		t.Errorf("admin groups: %v", admin.Subject.Organization)
	}
	for _, f := range []string{"sa.key", "sa.pub", "ca.key", "admin.key"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
}

func TestExecOfAPodCarriesItsIdentityAndEnv(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "s-0", Namespace: "ns", UID: "u1", Labels: map[string]string{"role": "storage"}},
		Spec: corev1.PodSpec{
			NodeName: "kwok-node-1",
			Containers: []corev1.Container{{
				Name: "tarantool",
				Env: []corev1.EnvVar{
					{Name: "LITERAL", Value: "v"},
					{Name: "TARANTOOL_RUN_DIR", Value: "/var/run/tarantool"},
					{Name: "ME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
					{Name: "ROLE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['role']"}}},
					{Name: "FROM_CM", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{Key: "k"}}},
				},
			}},
		},
	}
	obj := desiredExec(pod, "/w/ns/s-0", "/r/ab12cd34").Object
	targets := obj["spec"].(map[string]interface{})["execs"].([]interface{})
	if len(targets) != 2 {
		t.Fatalf("want a target for the container and a default one, got %d", len(targets))
	}
	got := map[string]string{}
	local := targets[0].(map[string]interface{})["local"].(map[string]interface{})
	for _, e := range local["envs"].([]interface{}) {
		m := e.(map[string]interface{})
		got[m["name"].(string)] = m["value"].(string)
	}
	want := map[string]string{
		"POD_NAME": "s-0", "POD_NAMESPACE": "ns", "POD_UID": "u1", "NODE_NAME": "kwok-node-1",
		"HOSTNAME": "s-0", "POD_WORKDIR": "/w/ns/s-0", "CONTAINER_NAME": "tarantool",
		"LITERAL": "v", "ME": "s-0", "ROLE": "storage", "TARANTOOL_RUN_DIR": "/r/ab12cd34",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if _, ok := got["FROM_CM"]; ok {
		t.Error("a ConfigMap reference cannot be resolved and must be left out")
	}
	if local["workDir"] != "/w/ns/s-0" {
		t.Errorf("workDir %v", local["workDir"])
	}
	owner := obj["metadata"].(map[string]interface{})["ownerReferences"].([]interface{})[0].(map[string]interface{})
	if owner["uid"] != "u1" || owner["kind"] != "Pod" {
		t.Errorf("owner %v", owner)
	}
}
