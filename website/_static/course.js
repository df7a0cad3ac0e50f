// The course website's fixes to the theme's markup for screen readers (docs/website.md, "What the site
// overrides"); axe-core reports both as serious. Nothing here changes what a sighted reader sees.
document.addEventListener("DOMContentLoaded", () => {
  // The sidebar's open/close arrow next to a lesson (its exercises page is under it) has no name.
  document.querySelectorAll("nav.bd-docs-nav details > summary").forEach((summary) => {
    const link = summary.parentElement.parentElement.querySelector(":scope > a");
    summary.setAttribute("aria-label", `Show or hide the pages under ${link ? link.textContent.trim() : "this page"}`);
  });
  // The search button's name ("Search") must contain what it shows ("Search Ctrl+K").
  document.querySelectorAll("button.search-button__button").forEach((button) => {
    const shown = button.textContent.replace(/\s+/g, " ").trim();
    if (shown) button.setAttribute("aria-label", shown);
  });
});
