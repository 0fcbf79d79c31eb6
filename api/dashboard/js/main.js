// mazenet dashboard: plain JavaScript modules, no framework, no build step.
//
// Security notes
// * The access token (JWT) lives in sessionStorage. It is scoped to this tab
//   and dies with it (a multi-hour bearer credential should not outlive the
//   session on a shared operator console), it is never attached by the
//   browser on its own (no cookie, so no CSRF surface), and it never goes in
//   a URL: EventSource connections use a fresh single-use 60 s SSE ticket
//   per attempt. Any script in the page could read it, so the page runs no
//   inline or third-party code (the server sends a strict CSP) and never
//   builds DOM from strings: all text goes through textContent.
// * Every API error's `detail` is shown to the operator verbatim.
import { hooks } from './api.js';
import { app } from './shell.js';

hooks.sessionEnded = (msg) => app.sessionEnded(msg);
hooks.forcePasswordChange = () => app.forcePasswordChange();

// Module scripts run after the document is parsed.
app.boot();
