// the page (issue 16)
