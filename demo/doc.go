// Package demo holds the Where2Eat demo (see README.md): the recommender
// API (recommender/), the micro app (app/) and its server (appserver/), the
// throwaway certificate tool (certs/), and keyless.yaml, whose tests in
// this package check that it loads and that its policy tests pass.
package demo
