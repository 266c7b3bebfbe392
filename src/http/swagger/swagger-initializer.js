// cinemo's own initializer: this tier's document, and no calls to the
// public validator badge service (validatorUrl: null), so the page works
// without internet access.
window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "/api/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
  });
};
