package domain

import (
	"fmt"
	"sort"
)

// Field types of a service config field (DOMAIN §14.1). The per-service
// config API coerces values against them; the mutation ops never do.
const (
	FieldString    = "string"
	FieldPassword  = "password"
	FieldInt       = "int"
	FieldBool      = "bool"
	FieldTextarea  = "textarea"
	FieldEnum      = "enum"
	FieldMultiEnum = "multi_enum"
)

// ServiceField describes one operator-editable knob of a service, in the
// shape the dashboard's inspector form renders (DOMAIN §14.1).
type ServiceField struct {
	Key         string   `json:"key"`
	Label       string   `json:"label"`
	Type        string   `json:"type"`
	Default     any      `json:"default"`
	Secret      bool     `json:"secret"`
	Help        string   `json:"help"`
	Enum        []string `json:"enum,omitempty"`
	Placeholder string   `json:"placeholder"`
}

// ServiceSchema is one catalog entry: what a service listens on, whether it
// runs once per fleet instead of per decky, and its config fields. Its JSON
// form is the body of GET /topologies/services/{name}/schema.
type ServiceSchema struct {
	Name           string         `json:"name"`
	Ports          []int          `json:"ports"`
	FleetSingleton bool           `json:"fleet_singleton"`
	Fields         []ServiceField `json:"fields"`
}

func (s ServiceSchema) clone() ServiceSchema {
	s.Ports = append([]int{}, s.Ports...)
	fields := make([]ServiceField, len(s.Fields))
	for i, f := range s.Fields {
		if f.Enum != nil {
			f.Enum = append([]string{}, f.Enum...)
		}
		f.Default = cloneValue(f.Default)
		fields[i] = f
	}
	s.Fields = fields
	return s
}

// Catalog is an immutable set of services. The original discovered extra
// ("pro" and operator-defined) services at runtime, so the catalog is a value
// that can be rebuilt with more entries rather than a fixed table; it is never
// mutated after construction, so it is safe to share between goroutines.
type Catalog struct {
	byName map[string]ServiceSchema
}

// NewCatalog builds a catalog from schemas. Duplicate or empty names are an
// error so a plug-in cannot silently shadow a built-in service.
func NewCatalog(schemas ...ServiceSchema) (*Catalog, error) {
	c := &Catalog{byName: make(map[string]ServiceSchema, len(schemas))}
	for _, s := range schemas {
		if s.Name == "" {
			return nil, fmt.Errorf("domain: service schema without a name")
		}
		if _, dup := c.byName[s.Name]; dup {
			return nil, fmt.Errorf("domain: duplicate service %q", s.Name)
		}
		c.byName[s.Name] = s.clone()
	}
	return c, nil
}

// Lookup returns a copy of the named service's schema, fleet singletons
// included.
func (c *Catalog) Lookup(name string) (ServiceSchema, bool) {
	s, ok := c.byName[name]
	if !ok {
		return ServiceSchema{}, false
	}
	return s.clone(), true
}

// ServiceNames returns the per-decky services, sorted: the set UNKNOWN_SERVICE
// checks against.
func (c *Catalog) ServiceNames() []string { return c.names(false) }

// FleetSingletons returns the services that run once fleet-wide, sorted; a
// decky listing one of them is invalid.
func (c *Catalog) FleetSingletons() []string { return c.names(true) }

// IsDeckyService reports whether a decky may list name.
func (c *Catalog) IsDeckyService(name string) bool {
	s, ok := c.byName[name]
	return ok && !s.FleetSingleton
}

func (c *Catalog) names(singleton bool) []string {
	out := []string{}
	for name, s := range c.byName {
		if s.FleetSingleton == singleton {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// builtin is the catalog of DOMAIN §14.1. It is built once and never
// modified; callers that need more services build their own Catalog from
// BuiltinServices plus their additions.
var builtin = mustCatalog(BuiltinServices())

func mustCatalog(schemas []ServiceSchema) *Catalog {
	c, err := NewCatalog(schemas...)
	if err != nil {
		panic(err)
	}
	return c
}

// ServiceNames returns the built-in per-decky service names, sorted.
func ServiceNames() []string { return builtin.ServiceNames() }

// FleetSingletons returns the built-in fleet singletons (`sniffer`).
func FleetSingletons() []string { return builtin.FleetSingletons() }

// LookupService returns the built-in schema for name, fleet singletons
// included, so the schema endpoint can describe `sniffer` too.
func LookupService(name string) (ServiceSchema, bool) { return builtin.Lookup(name) }

// IsDeckyService reports whether name is a built-in per-decky service.
func IsDeckyService(name string) bool { return builtin.IsDeckyService(name) }

// noFields is spelled out so services without knobs marshal `"fields": []`.
func noFields() []ServiceField { return []ServiceField{} }

func stringField(key, label, help string) ServiceField {
	return ServiceField{Key: key, Label: label, Type: FieldString, Help: help}
}

// httpFields returns the http persona knobs; https reuses them with a wider
// version list.
func httpFields(versions []string, versionsHelp string) []ServiceField {
	return []ServiceField{
		{Key: "server_header", Label: "Server header", Type: FieldString, Help: "Value of the Server response header.", Placeholder: "Apache/2.4.41 (Ubuntu)"},
		{Key: "response_code", Label: "Default response code", Type: FieldInt, Default: 200, Help: "Status code of the index page."},
		{Key: "fake_app", Label: "Fake application", Type: FieldEnum, Default: "none", Enum: []string{"none", "wordpress", "phpmyadmin", "tomcat", "jenkins"}, Help: "Application skin rendered on the index page."},
		{Key: "extra_headers", Label: "Extra headers (JSON or raw)", Type: FieldTextarea, Help: "Additional response headers.", Placeholder: `{"X-Powered-By": "PHP/7.4.3"}`},
		{Key: "custom_body", Label: "Custom response body", Type: FieldTextarea, Help: "Replaces the default index page body."},
		{Key: "http_versions", Label: "Supported HTTP versions", Type: FieldMultiEnum, Default: []string{"http/1.1"}, Enum: versions, Help: versionsHelp},
	}
}

// loginFields are the credential knobs shared by ssh and telnet.
func loginFields() []ServiceField {
	return []ServiceField{
		{Key: "password", Label: "Root password", Type: FieldPassword, Default: "admin", Secret: true, Help: "Password accepted for root logins."},
		{Key: "user", Label: "User name", Type: FieldString, Default: "ubuntu", Help: "Unprivileged account offered to attackers."},
		{Key: "user_password", Label: "User password", Type: FieldPassword, Default: "admin", Secret: true, Help: "Password of the unprivileged account."},
		stringField("hostname", "Hostname", "Shell prompt hostname; empty uses the decky name."),
	}
}

// mailFields are the MTA persona knobs shared by smtp and smtp_relay.
func mailFields() []ServiceField {
	return []ServiceField{
		stringField("banner", "SMTP banner", "Greeting sent on connect; empty derives one from the MTA."),
		{Key: "mta", Label: "MTA persona", Type: FieldEnum, Default: "postfix", Enum: []string{"postfix", "exim", "sendmail"}, Help: "Mail server the decky imitates."},
	}
}

// BuiltinServices returns a fresh copy of the DOMAIN §14.1 table: the 28
// per-decky services plus the fleet singleton `sniffer`.
func BuiltinServices() []ServiceSchema {
	bare := func(name string, ports ...int) ServiceSchema {
		return ServiceSchema{Name: name, Ports: ports, Fields: noFields()}
	}
	https := append(httpFields([]string{"http/1.1", "http/2", "http/3"}, "Protocol versions advertised; HTTP/3 needs TLS."),
		stringField("tls_cn", "TLS common name", "Subject CN of the generated certificate."),
		ServiceField{Key: "tls_cert", Label: "TLS certificate (PEM)", Type: FieldTextarea, Secret: true, Help: "Certificate to serve instead of a generated one."},
		ServiceField{Key: "tls_key", Label: "TLS private key (PEM)", Type: FieldTextarea, Secret: true, Help: "Key matching the certificate."},
	)
	relay := append(mailFields(),
		stringField("upstream_host", "Upstream host", "Smart host that receives relayed mail."),
		ServiceField{Key: "upstream_port", Label: "Upstream port", Type: FieldInt, Default: 25, Help: "Port of the smart host."},
		stringField("upstream_user", "Upstream user", "Login for the smart host."),
		stringField("upstream_pass", "Upstream password", "Password for the smart host."),
		stringField("upstream_sender", "Upstream sender", "Envelope sender used when relaying."),
		ServiceField{Key: "probe_limit", Label: "Probe limit", Type: FieldInt, Default: 1, Help: "Relay attempts actually forwarded before the relay goes quiet."},
	)
	return []ServiceSchema{
		bare("conpot", 502, 161, 80),
		{Name: "dns", Ports: []int{53}, Fields: []ServiceField{
			{Key: "zone_mode", Label: "Zone mode", Type: FieldEnum, Default: "auth", Enum: []string{"auth", "recursive", "open"}, Help: "auth answers its zone only; recursive sets RA and returns NXDOMAIN elsewhere; open answers everything."},
			{Key: "domain", Label: "Domain", Type: FieldString, Help: "Authoritative zone; empty derives one from the decky name.", Placeholder: "corp.local"},
			{Key: "bind_version", Label: "BIND version banner", Type: FieldString, Default: "9.11.4-P2-RedHat-9.11.4-26.P2.el7_9.10", Help: "Answer to version.bind CHAOS TXT queries."},
			stringField("nsid", "NSID", "EDNS NSID string; empty derives one from the decky."),
			{Key: "extra_records", Label: "Extra records", Type: FieldTextarea, Help: "Additional zone records, one per line: <name> <TYPE> <value>.", Placeholder: "www A 10.0.0.5"},
			{Key: "real_recursive", Label: "Real recursion", Type: FieldBool, Default: false, Help: "Forward out-of-zone queries to the upstream resolver."},
			{Key: "upstream", Label: "Upstream resolver", Type: FieldString, Default: "8.8.8.8:53", Help: "host:port used when real recursion is on."},
			{Key: "forward_budget", Label: "Forward budget", Type: FieldString, Default: "50", Help: "Queries forwarded per window before refusing."},
			{Key: "forward_window", Label: "Forward window (s)", Type: FieldString, Default: "1.0", Help: "Length of the forwarding budget window in seconds."},
			stringField("state_path", "State path", "Where the resolver keeps its state; empty keeps it in memory."),
		}},
		bare("docker_api", 2375, 2376),
		bare("elasticsearch", 9200),
		bare("ftp", 21),
		{Name: "http", Ports: []int{80, 443}, Fields: httpFields([]string{"http/1.1", "http/2"}, "Protocol versions advertised; HTTP/3 needs TLS, use the https service.")},
		{Name: "https", Ports: []int{443}, Fields: https},
		bare("imap", 143, 993),
		bare("k8s", 6443, 8080),
		bare("ldap", 389, 636),
		bare("llmnr", 5355, 5353),
		bare("mongodb", 27017),
		bare("mqtt", 1883),
		bare("mssql", 1433),
		{Name: "mysql", Ports: []int{3306}, Fields: []ServiceField{
			stringField("version", "Server version", "Version string in the handshake greeting."),
		}},
		bare("pop3", 110, 995),
		bare("postgres", 5432),
		{Name: "rdp", Ports: []int{3389}, Fields: []ServiceField{
			{Key: "nla", Label: "Network Level Authentication", Type: FieldBool, Default: false, Help: "Require NLA (CredSSP) before the login screen."},
		}},
		{Name: "redis", Ports: []int{6379}, Fields: []ServiceField{
			stringField("version", "Server version", "redis_version reported by INFO."),
			stringField("os_string", "OS string", "os field reported by INFO."),
		}},
		bare("sip", 5060),
		bare("smb", 445, 139),
		{Name: "smtp", Ports: []int{25, 587}, Fields: mailFields()},
		{Name: "smtp_relay", Ports: []int{25, 587}, Fields: relay},
		bare("snmp", 161),
		{Name: "ssh", Ports: []int{22}, Fields: loginFields()},
		{Name: "telnet", Ports: []int{23}, Fields: loginFields()},
		bare("tftp", 69),
		bare("vnc", 5900),
		{Name: "sniffer", Ports: []int{}, FleetSingleton: true, Fields: noFields()},
	}
}

// Archetype is a named decky persona (DOMAIN §14.2). Its services are a
// suggestion for the dashboard; add_decky never derives services from it.
type Archetype struct {
	Slug             string   `json:"slug"`
	DisplayName      string   `json:"display_name"`
	Description      string   `json:"description"`
	Services         []string `json:"services"`
	PreferredDistros []string `json:"preferred_distros"`
	NmapOS           string   `json:"nmap_os"`
}

// Archetypes returns a fresh copy of the archetype catalog of DOMAIN §14.2.
func Archetypes() []Archetype {
	a := func(slug, display, desc, nmapOS string, services, distros []string) Archetype {
		return Archetype{Slug: slug, DisplayName: display, Description: desc, Services: services, PreferredDistros: distros, NmapOS: nmapOS}
	}
	l := func(s ...string) []string { return s }
	return []Archetype{
		a("windows-workstation", "Windows Workstation", "corporate desktop", "windows", l("smb", "rdp"), l("debian", "ubuntu22")),
		a("windows-server", "Windows Server", "domain member server", "windows_server", l("smb", "rdp", "ldap"), l("debian", "ubuntu22")),
		a("domain-controller", "Domain Controller", "AD domain controller", "windows_server", l("ldap", "smb", "rdp", "llmnr"), l("debian", "ubuntu22")),
		a("linux-server", "Linux Server", "general Linux host", "linux", l("ssh", "http"), l("debian", "ubuntu22", "rocky9", "fedora")),
		a("web-server", "Web Server", "public web host", "linux", l("http", "ftp"), l("debian", "ubuntu22", "ubuntu20")),
		a("database-server", "Database Server", "data tier", "linux", l("mysql", "postgres", "redis"), l("debian", "ubuntu22")),
		a("mail-server", "Mail Server", "mail relay", "linux", l("smtp", "pop3", "imap"), l("debian", "ubuntu22")),
		a("file-server", "File Server", "file storage", "linux", l("smb", "ftp", "ssh"), l("debian", "ubuntu22", "rocky9")),
		a("printer", "Network Printer", "network printer", "embedded", l("snmp", "ftp"), l("alpine", "debian")),
		a("iot-device", "IoT Device", "embedded/IoT", "embedded", l("mqtt", "snmp", "telnet"), l("alpine")),
		a("industrial-control", "Industrial Control System", "ICS/SCADA node", "embedded", l("conpot", "snmp"), l("debian")),
		a("voip-server", "VoIP Server", "SIP PBX", "linux", l("sip"), l("debian", "ubuntu22")),
		a("monitoring-node", "Monitoring Node", "monitoring host", "linux", l("snmp", "ssh"), l("debian", "rocky9")),
		a("devops-host", "DevOps Host", "CI/container host", "linux", l("docker_api", "ssh", "k8s"), l("ubuntu22", "debian")),
		a("deaddeck", "Deaddeck (Entry Point)", "Internet-facing entry point with real interactive SSH", "linux", l("ssh"), l("debian", "ubuntu22")),
	}
}
