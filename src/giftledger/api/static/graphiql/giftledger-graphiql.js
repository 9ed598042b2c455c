// Starts the GraphiQL explorer on the page GET /graphql gives a browser (api/graphiql.py). It is a file, not an
// inline script, so the page's Content-Security-Policy can allow scripts from this origin only.
(function () {
  "use strict";
  var fetcher = GraphiQL.createFetcher({ url: window.location.pathname });
  ReactDOM.createRoot(document.getElementById("graphiql")).render(React.createElement(GraphiQL, { fetcher: fetcher }));
})();
