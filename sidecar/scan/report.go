package scan

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"strings"
)

// WriteText writes the report for people: one finding per line as
// file:line:column, severity, rule and the redacted excerpt, the
// description indented below, then what was skipped and a summary.
func WriteText(w io.Writer, rep *Report) error {
	ew := &errWriter{w: w}
	for _, f := range rep.Findings {
		ew.printf("%s:%d:%d: %s %s: %s", f.File, f.Line, f.Column, f.Severity, f.RuleID, f.Excerpt)
		if f.Commit != "" {
			ew.printf(" (commit %.12s)", f.Commit)
		}
		ew.printf("\n    %s\n", f.Description)
	}
	for _, s := range rep.Skipped {
		ew.printf("skipped %s: %s\n", s.Path, s.Reason)
	}
	counts := map[Severity]int{}
	for _, f := range rep.Findings {
		counts[f.Severity]++
	}
	var parts []string
	for s := SeverityCritical; s >= SeverityInfo; s-- {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	summary := "no findings"
	if len(parts) > 0 {
		summary = fmt.Sprintf("%d finding%s (%s)", len(rep.Findings), plural(len(rep.Findings)), strings.Join(parts, ", "))
	}
	ew.printf("%s in %d file%s, %s scanned", summary, rep.Files, plural(int(rep.Files)), size(rep.Bytes))
	if rep.Leases > 0 {
		ew.printf("; %d keyless lease%s recognised as short-lived and not reported", rep.Leases, plural(int(rep.Leases)))
	}
	ew.printf("\n")
	return ew.err
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, a ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, a...)
	}
}

// WriteJSON writes the report as one indented JSON object with findings,
// skipped, files, bytes and leases (see the struct tags of [Report]).
func WriteJSON(w io.Writer, rep *Report) error {
	out := *rep
	if out.Findings == nil {
		out.Findings = []Finding{}
	}
	if out.Skipped == nil {
		out.Skipped = []Skip{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// Tool identifies the program in SARIF's tool.driver.
type Tool struct {
	Name, Version, InformationURI string
}

// SARIF 2.1.0, the subset code-scanning tools read.
//
// https://docs.oasis-open.org/sarif/sarif/v2.1.0/sarif-v2.1.0.html
const sarifSchema = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"

type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool        sarifTool         `json:"tool"`
	Invocations []sarifInvocation `json:"invocations"`
	Results     []sarifResult     `json:"results"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	Version        string      `json:"version,omitempty"`
	InformationURI string      `json:"informationUri,omitempty"`
	Rules          []sarifRule `json:"rules"`
}

type sarifRule struct {
	ID                   string            `json:"id"`
	ShortDescription     sarifMessage      `json:"shortDescription"`
	DefaultConfiguration map[string]string `json:"defaultConfiguration"`
	Properties           map[string]any    `json:"properties"`
}

type sarifMessage struct {
	Text string `json:"text"`
}

type sarifInvocation struct {
	ExecutionSuccessful        bool                `json:"executionSuccessful"`
	ToolExecutionNotifications []sarifNotification `json:"toolExecutionNotifications,omitempty"`
}

type sarifNotification struct {
	Level     string          `json:"level"`
	Message   sarifMessage    `json:"message"`
	Locations []sarifLocation `json:"locations,omitempty"`
}

type sarifResult struct {
	RuleID     string          `json:"ruleId"`
	RuleIndex  int             `json:"ruleIndex"`
	Level      string          `json:"level"`
	Message    sarifMessage    `json:"message"`
	Locations  []sarifLocation `json:"locations"`
	Properties map[string]any  `json:"properties,omitempty"`
}

type sarifLocation struct {
	PhysicalLocation struct {
		ArtifactLocation struct {
			URI string `json:"uri"`
		} `json:"artifactLocation"`
		Region *sarifRegion `json:"region,omitempty"`
	} `json:"physicalLocation"`
}

type sarifRegion struct {
	StartLine   int `json:"startLine"`
	StartColumn int `json:"startColumn"`
}

// sarifLevel maps a severity to SARIF's result.level.
func sarifLevel(s Severity) string {
	switch {
	case s >= SeverityHigh:
		return "error"
	case s == SeverityMedium:
		return "warning"
	}
	return "note"
}

// securitySeverity is GitHub code scanning's properties.security-severity
// (a CVSS-like score) for each severity.
var securitySeverity = map[Severity]string{
	SeverityCritical: "9.5", SeverityHigh: "8.0", SeverityMedium: "5.5", SeverityLow: "3.0", SeverityInfo: "0.0",
}

// sarifURI makes a SARIF artifactLocation.uri from a finding's file: a
// relative reference for relative paths, a file URI for absolute ones.
func sarifURI(file string) string {
	u := &url.URL{Path: filepath.ToSlash(file)}
	if filepath.IsAbs(file) {
		u.Scheme = "file"
	}
	return u.String()
}

// WriteSARIF writes the report as a SARIF 2.1.0 log with one run: one
// rule per rule id found, one result per finding, and the skipped inputs
// as tool execution notifications.
func WriteSARIF(w io.Writer, rep *Report, tool Tool) error {
	run := sarifRun{Results: []sarifResult{}}
	run.Tool.Driver = sarifDriver{Name: tool.Name, Version: tool.Version, InformationURI: tool.InformationURI, Rules: []sarifRule{}}
	index := map[string]int{}
	for _, f := range rep.Findings {
		i, ok := index[f.RuleID]
		if !ok {
			i = len(run.Tool.Driver.Rules)
			index[f.RuleID] = i
			desc := RuleDescription(f.RuleID)
			if desc == "" {
				desc = f.Description
			}
			sev := severityOf(f.RuleID)
			run.Tool.Driver.Rules = append(run.Tool.Driver.Rules, sarifRule{
				ID: f.RuleID, ShortDescription: sarifMessage{desc},
				DefaultConfiguration: map[string]string{"level": sarifLevel(sev)},
				Properties:           map[string]any{"tags": []string{"security", "secret"}, "security-severity": securitySeverity[sev]},
			})
		}
		var loc sarifLocation
		loc.PhysicalLocation.ArtifactLocation.URI = sarifURI(f.File)
		loc.PhysicalLocation.Region = &sarifRegion{StartLine: f.Line, StartColumn: f.Column}
		res := sarifResult{
			RuleID: f.RuleID, RuleIndex: i, Level: sarifLevel(f.Severity),
			Message:    sarifMessage{fmt.Sprintf("%s [%s, %s]", f.Description, f.Severity, f.Excerpt)},
			Locations:  []sarifLocation{loc},
			Properties: map[string]any{"severity": f.Severity.String()},
		}
		if f.Commit != "" {
			res.Properties["commit"] = f.Commit
		}
		run.Results = append(run.Results, res)
	}
	inv := sarifInvocation{ExecutionSuccessful: true}
	for _, s := range rep.Skipped {
		var loc sarifLocation
		loc.PhysicalLocation.ArtifactLocation.URI = sarifURI(s.Path)
		level := "note"
		if s.Refused {
			level = "warning"
		}
		inv.ToolExecutionNotifications = append(inv.ToolExecutionNotifications, sarifNotification{
			Level: level, Message: sarifMessage{s.Reason}, Locations: []sarifLocation{loc},
		})
	}
	run.Invocations = []sarifInvocation{inv}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(sarifLog{Schema: sarifSchema, Version: "2.1.0", Runs: []sarifRun{run}})
}
