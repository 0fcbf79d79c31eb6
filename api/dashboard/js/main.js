// mazenet dashboard: plain JavaScript modules, no framework, no build step.
//
// Security notes
// * The access token (JWT) lives in sessionStorage and is handed to the
//   browser's other open tabs over a same-origin BroadcastChannel (see
//   session.js and docs/SECURITY_NOTES.md). It is never attached by the
//   browser on its own (no cookie, so no CSRF surface) and never goes in a
//   URL: EventSource connections use a fresh single-use 60 s SSE ticket per
//   attempt. Any script in the page could read it, so the page runs no
//   inline or third-party code (the server sends a strict CSP) and never
//   builds DOM from strings: all text goes through textContent.
// * Error texts are shown in plain words (explain.js); ids never are.
import { app } from './shell.js';

// Module scripts run after the document is parsed.
app.boot();
