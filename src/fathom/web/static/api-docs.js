// Starts Swagger UI on /docs (an own file, not an inline script: the page's CSP forbids those).
/* global SwaggerUIBundle */
const root = document.getElementById("swagger-ui");
SwaggerUIBundle({
  url: root.dataset.openapiUrl,
  dom_id: "#swagger-ui",
  deepLinking: true,
  // No call to validator.swagger.io: the docs work offline and reach no other origin.
  validatorUrl: null,
});
