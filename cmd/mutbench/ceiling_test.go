package main

import (
	"go/ast"
	"go/constant"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// TestEnqueueStatementMatchesStore fails when postgres.EnqueueMutation's SQL
// changes without enqueueStatement (what pgbench runs for the ceiling)
// following it: the ceiling must be the store's exact statement. It reads
// the store's source, so no database is needed.
func TestEnqueueStatementMatchesStore(t *testing.T) {
	got, err := storeEnqueueStatement(filepath.Join("..", "..", "internal", "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	if got != enqueueStatement {
		t.Fatalf("postgres.EnqueueMutation's statement changed; copy it into enqueueStatement (cmd/mutbench/ceiling.go):\n%s", got)
	}
}

// storeEnqueueStatement evaluates the constant q declared in
// EnqueueMutation, resolving the package-level string constants it is built
// from.
func storeEnqueueStatement(dir string) (string, error) {
	fset := token.NewFileSet()
	paths, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return "", err
	}
	consts := map[string]ast.Expr{}
	var q ast.Expr
	for _, path := range paths {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return "", err
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.GenDecl:
				collectConsts(d, consts)
			case *ast.FuncDecl:
				if d.Name.Name != "EnqueueMutation" || d.Body == nil {
					continue
				}
				local := map[string]ast.Expr{}
				ast.Inspect(d.Body, func(n ast.Node) bool {
					if g, ok := n.(*ast.GenDecl); ok {
						collectConsts(g, local)
					}
					return true
				})
				q = local["q"]
			}
		}
	}
	if q == nil {
		return "", errNoStatement
	}
	v, err := evalString(q, consts)
	if err != nil {
		return "", err
	}
	return constant.StringVal(v), nil
}

func collectConsts(g *ast.GenDecl, into map[string]ast.Expr) {
	if g.Tok != token.CONST {
		return
	}
	for _, spec := range g.Specs {
		vs := spec.(*ast.ValueSpec)
		for i, name := range vs.Names {
			if i < len(vs.Values) {
				into[name.Name] = vs.Values[i]
			}
		}
	}
}

func evalString(e ast.Expr, consts map[string]ast.Expr) (constant.Value, error) {
	switch e := e.(type) {
	case *ast.BasicLit:
		return constant.MakeFromLiteral(e.Value, e.Kind, 0), nil
	case *ast.ParenExpr:
		return evalString(e.X, consts)
	case *ast.Ident:
		if d, ok := consts[e.Name]; ok {
			return evalString(d, consts)
		}
	case *ast.BinaryExpr:
		if e.Op == token.ADD {
			x, err := evalString(e.X, consts)
			if err != nil {
				return nil, err
			}
			y, err := evalString(e.Y, consts)
			if err != nil {
				return nil, err
			}
			return constant.BinaryOp(x, token.ADD, y), nil
		}
	}
	return nil, errNoStatement
}

type statementError string

func (e statementError) Error() string { return string(e) }

const errNoStatement = statementError("cannot evaluate EnqueueMutation's const q")

// TestCeilingScriptBindsEveryParameter checks that the pgbench script
// leaves no $n placeholder and names the topology.
func TestCeilingScriptBindsEveryParameter(t *testing.T) {
	s := ceilingScript("3f0c6a56-6c1e-4b53-9d3c-3d7f2f3e2a10")
	if strings.Contains(s, "$") {
		t.Fatalf("unbound parameter in:\n%s", s)
	}
	if !strings.Contains(s, "WHERE id = '3f0c6a56-6c1e-4b53-9d3c-3d7f2f3e2a10'") || !strings.HasSuffix(s, ";\n") {
		t.Fatalf("unexpected script:\n%s", s)
	}
}
