// The operator's console: the parts of the admin script for settings and alerts. Served from /admin/assets.
(() => {
  // A refused save (400 invalid, 403 args by a non-admin, 409 file changed) answers with the form and
  // its explanation: swap it in rather than treating it as a failed request.
  document.addEventListener('htmx:beforeSwap', (e) => {
    const status = e.detail.xhr.status;
    if (![400, 403, 409].includes(status)) return;
    if (!e.detail.target?.closest?.('[data-settings]')) return;
    e.detail.shouldSwap = true;
    e.detail.isError = false;
  });
})();
