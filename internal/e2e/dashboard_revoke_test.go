package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestDashboardRevokedStreamGoesToLogin: the browser's token is logged out
// from elsewhere while its stream is live. The sse process ends the stream
// with `event: revoked`; the page asks for one fresh ticket, gets 401 and
// shows the login screen, instead of reconnecting with a dead token.
func TestDashboardRevokedStreamGoesToLogin(t *testing.T) {
	bin := dashChromium(t)
	t.Parallel()
	st := startDashStack(t, nil)
	b := newDashBrowser(t, bin)
	b.open(st, "#/")
	b.waitFor("stream live", exists(`#conn[data-state="live"]`), 15*time.Second)
	require.Eventually(t, func() bool { return st.heldSlots(t) == 1 }, 10*time.Second, 20*time.Millisecond)

	// Count the page's ticket requests from here on.
	require.True(t, dashEval[bool](b, `(() => {
		window.__tickets = 0;
		const orig = window.fetch;
		window.fetch = function (url, opts) {
			if (String(url).includes('/auth/sse-ticket')) window.__tickets++;
			return orig.apply(this, arguments);
		};
		return true;
	})()`))
	token := dashEval[string](b, `sessionStorage.getItem('mazenet.token') || ''`)
	require.NotEmpty(t, token)

	// Log that token out from Go, as another client would.
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, st.APIURL+"/api/v1/auth/logout", strings.NewReader(""))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	b.waitFor("login screen", exists("#login-username"), 15*time.Second)
	require.Eventually(t, func() bool { return st.heldSlots(t) == 0 }, 10*time.Second, 20*time.Millisecond, "the stream's slot is released")
	// One ticket request (refused with 401) and no reconnect loop: the
	// stream stops once the session has ended.
	require.LessOrEqual(t, dashEval[int64](b, `window.__tickets`), int64(1))
	require.Equal(t, "", dashEval[string](b, `sessionStorage.getItem('mazenet.token') || ''`), "the dead token is forgotten")
	b.noProblems(true) // the refused ticket request is a failed resource load
}
