package domain

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestServiceNames(t *testing.T) {
	t.Parallel()
	require.Equal(t, []string{
		"conpot", "dns", "docker_api", "elasticsearch", "ftp", "http", "https", "imap", "k8s", "ldap",
		"llmnr", "mongodb", "mqtt", "mssql", "mysql", "pop3", "postgres", "rdp", "redis", "sip",
		"smb", "smtp", "smtp_relay", "snmp", "ssh", "telnet", "tftp", "vnc",
	}, ServiceNames())
	require.Equal(t, []string{"sniffer"}, FleetSingletons())
}

func TestServiceSchemas(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		ports     []int
		singleton bool
		keys      []string
	}{
		{name: "conpot", ports: []int{502, 161, 80}, keys: []string{}},
		{name: "dns", ports: []int{53}, keys: []string{"zone_mode", "domain", "bind_version", "nsid", "extra_records", "real_recursive", "upstream", "forward_budget", "forward_window", "state_path"}},
		{name: "docker_api", ports: []int{2375, 2376}, keys: []string{}},
		{name: "elasticsearch", ports: []int{9200}, keys: []string{}},
		{name: "ftp", ports: []int{21}, keys: []string{}},
		{name: "http", ports: []int{80, 443}, keys: []string{"server_header", "response_code", "fake_app", "extra_headers", "custom_body", "http_versions"}},
		{name: "https", ports: []int{443}, keys: []string{"server_header", "response_code", "fake_app", "extra_headers", "custom_body", "http_versions", "tls_cn", "tls_cert", "tls_key"}},
		{name: "imap", ports: []int{143, 993}, keys: []string{}},
		{name: "k8s", ports: []int{6443, 8080}, keys: []string{}},
		{name: "ldap", ports: []int{389, 636}, keys: []string{}},
		{name: "llmnr", ports: []int{5355, 5353}, keys: []string{}},
		{name: "mongodb", ports: []int{27017}, keys: []string{}},
		{name: "mqtt", ports: []int{1883}, keys: []string{}},
		{name: "mssql", ports: []int{1433}, keys: []string{}},
		{name: "mysql", ports: []int{3306}, keys: []string{"version"}},
		{name: "pop3", ports: []int{110, 995}, keys: []string{}},
		{name: "postgres", ports: []int{5432}, keys: []string{}},
		{name: "rdp", ports: []int{3389}, keys: []string{"nla"}},
		{name: "redis", ports: []int{6379}, keys: []string{"version", "os_string"}},
		{name: "sip", ports: []int{5060}, keys: []string{}},
		{name: "smb", ports: []int{445, 139}, keys: []string{}},
		{name: "smtp", ports: []int{25, 587}, keys: []string{"banner", "mta"}},
		{name: "smtp_relay", ports: []int{25, 587}, keys: []string{"banner", "mta", "upstream_host", "upstream_port", "upstream_user", "upstream_pass", "upstream_sender", "probe_limit"}},
		{name: "snmp", ports: []int{161}, keys: []string{}},
		{name: "ssh", ports: []int{22}, keys: []string{"password", "user", "user_password", "hostname"}},
		{name: "telnet", ports: []int{23}, keys: []string{"password", "user", "user_password", "hostname"}},
		{name: "tftp", ports: []int{69}, keys: []string{}},
		{name: "vnc", ports: []int{5900}, keys: []string{}},
		{name: "sniffer", ports: []int{}, singleton: true, keys: []string{}},
	}
	require.Len(t, tests, 29)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, ok := LookupService(tt.name)
			require.True(t, ok)
			require.Equal(t, tt.name, s.Name)
			require.Equal(t, tt.ports, s.Ports)
			require.Equal(t, tt.singleton, s.FleetSingleton)
			keys := []string{}
			for _, f := range s.Fields {
				keys = append(keys, f.Key)
			}
			require.Equal(t, tt.keys, keys)
			require.Equal(t, !tt.singleton, IsDeckyService(tt.name))
		})
	}
}

func TestServiceFieldDetails(t *testing.T) {
	t.Parallel()
	tests := []struct {
		service string
		key     string
		want    ServiceField
	}{
		{service: "ssh", key: "password", want: ServiceField{Type: FieldPassword, Default: "admin", Secret: true}},
		{service: "ssh", key: "user", want: ServiceField{Type: FieldString, Default: "ubuntu"}},
		{service: "telnet", key: "user_password", want: ServiceField{Type: FieldPassword, Default: "admin", Secret: true}},
		{service: "http", key: "response_code", want: ServiceField{Type: FieldInt, Default: 200}},
		{service: "http", key: "fake_app", want: ServiceField{Type: FieldEnum, Default: "none", Enum: []string{"none", "wordpress", "phpmyadmin", "tomcat", "jenkins"}}},
		{service: "http", key: "http_versions", want: ServiceField{Type: FieldMultiEnum, Default: []string{"http/1.1"}, Enum: []string{"http/1.1", "http/2"}}},
		{service: "https", key: "http_versions", want: ServiceField{Type: FieldMultiEnum, Default: []string{"http/1.1"}, Enum: []string{"http/1.1", "http/2", "http/3"}}},
		{service: "https", key: "tls_key", want: ServiceField{Type: FieldTextarea, Secret: true}},
		{service: "dns", key: "zone_mode", want: ServiceField{Type: FieldEnum, Default: "auth", Enum: []string{"auth", "recursive", "open"}}},
		{service: "dns", key: "bind_version", want: ServiceField{Type: FieldString, Default: "9.11.4-P2-RedHat-9.11.4-26.P2.el7_9.10"}},
		{service: "dns", key: "real_recursive", want: ServiceField{Type: FieldBool, Default: false}},
		{service: "dns", key: "upstream", want: ServiceField{Type: FieldString, Default: "8.8.8.8:53"}},
		{service: "dns", key: "forward_budget", want: ServiceField{Type: FieldString, Default: "50"}},
		{service: "dns", key: "forward_window", want: ServiceField{Type: FieldString, Default: "1.0"}},
		{service: "rdp", key: "nla", want: ServiceField{Type: FieldBool, Default: false}},
		{service: "smtp", key: "mta", want: ServiceField{Type: FieldEnum, Default: "postfix", Enum: []string{"postfix", "exim", "sendmail"}}},
		{service: "smtp_relay", key: "upstream_port", want: ServiceField{Type: FieldInt, Default: 25}},
		{service: "smtp_relay", key: "probe_limit", want: ServiceField{Type: FieldInt, Default: 1}},
		{service: "mysql", key: "version", want: ServiceField{Type: FieldString}},
	}
	for _, tt := range tests {
		t.Run(tt.service+"/"+tt.key, func(t *testing.T) {
			t.Parallel()
			s, ok := LookupService(tt.service)
			require.True(t, ok)
			var got *ServiceField
			for i := range s.Fields {
				if s.Fields[i].Key == tt.key {
					got = &s.Fields[i]
				}
			}
			require.NotNil(t, got)
			require.NotEmpty(t, got.Label)
			require.Equal(t, tt.want, ServiceField{Type: got.Type, Default: got.Default, Secret: got.Secret, Enum: got.Enum})
		})
	}
}

func TestServiceSchemaJSON(t *testing.T) {
	t.Parallel()
	s, _ := LookupService("rdp")
	b, err := json.Marshal(s)
	require.NoError(t, err)
	require.JSONEq(t, `{"name":"rdp","ports":[3389],"fleet_singleton":false,"fields":[
		{"key":"nla","label":"Network Level Authentication","type":"bool","default":false,"secret":false,
		 "help":"Require NLA (CredSSP) before the login screen.","placeholder":""}]}`, string(b))

	s, _ = LookupService("sniffer")
	b, err = json.Marshal(s)
	require.NoError(t, err)
	require.JSONEq(t, `{"name":"sniffer","ports":[],"fleet_singleton":true,"fields":[]}`, string(b))
}

func TestCatalogIsImmutable(t *testing.T) {
	t.Parallel()
	s, _ := LookupService("http")
	s.Ports[0] = 1
	s.Fields[2].Enum[0] = "hacked"
	again, _ := LookupService("http")
	require.Equal(t, []int{80, 443}, again.Ports)
	require.Equal(t, "none", again.Fields[2].Enum[0])

	_, ok := LookupService("nope")
	require.False(t, ok)
	require.False(t, IsDeckyService("nope"))
}

func TestNewCatalog(t *testing.T) {
	t.Parallel()
	custom := ServiceSchema{Name: "gopher", Ports: []int{70}, Fields: []ServiceField{}}
	c, err := NewCatalog(append(BuiltinServices(), custom)...)
	require.NoError(t, err)
	require.True(t, c.IsDeckyService("gopher"))
	require.Len(t, c.ServiceNames(), 29)
	require.False(t, IsDeckyService("gopher"), "the built-in catalog does not grow")

	_, err = NewCatalog(custom, custom)
	require.Error(t, err)
	_, err = NewCatalog(ServiceSchema{})
	require.Error(t, err)
}

func TestArchetypes(t *testing.T) {
	t.Parallel()
	as := Archetypes()
	require.Len(t, as, 15)
	seen := map[string]bool{}
	for _, a := range as {
		require.False(t, seen[a.Slug], a.Slug)
		seen[a.Slug] = true
		require.NotEmpty(t, a.DisplayName)
		require.NotEmpty(t, a.PreferredDistros)
		for _, s := range a.Services {
			require.True(t, IsDeckyService(s), "%s lists %s", a.Slug, s)
		}
	}
	require.Equal(t, Archetype{
		Slug: "deaddeck", DisplayName: "Deaddeck (Entry Point)",
		Description: "Internet-facing entry point with real interactive SSH",
		Services:    []string{"ssh"}, PreferredDistros: []string{"debian", "ubuntu22"}, NmapOS: "linux",
	}, as[14])
	b, err := json.Marshal(as[0])
	require.NoError(t, err)
	require.JSONEq(t, `{"slug":"windows-workstation","display_name":"Windows Workstation","description":"corporate desktop",
		"services":["smb","rdp"],"preferred_distros":["debian","ubuntu22"],"nmap_os":"windows"}`, string(b))
}
