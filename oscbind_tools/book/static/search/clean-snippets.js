/* The search page's result snippets as a reader reads the page: Sphinx builds each snippet from the page's HTML
 * text, which holds the LaTeX source of every formula and the labels of the "show code" toggles. This drops
 * formulas, code cells and toggle labels from the text the snippets are cut from. Loaded on the search page only
 * (oscbind_tools.sphinx_ext). */
(function () {
  function patch() {
    if (!window.Search || !Search.htmlToText || Search.htmlToText.oscbindClean) return;
    var original = Search.htmlToText;
    Search.htmlToText = function (htmlString, anchor) {
      var doc = new DOMParser().parseFromString(htmlString, "text/html");
      doc.querySelectorAll(".math, .cell_input, summary, .toggle-details__summary, button, .admonition-title")
        .forEach(function (el) { el.remove(); });
      return original(doc.documentElement.outerHTML, anchor);
    };
    Search.htmlToText.oscbindClean = true;
  }
  patch();
  document.addEventListener("DOMContentLoaded", patch);
})();
