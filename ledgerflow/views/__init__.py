"""HTML pieces over a ledger's rows, shared by the web UI (ui/: its pages, search and diff)
and the Client API's notebook views (client/notebook.py): the page frame and escaping
(layout), the rows a page shows (queries), the DAG and Gantt drawings, artifact values, log
pages, and which UI servers are running (registry). They read through reads.py and
logstore.py and know nothing of the Client API or the web server, so both can build on
them."""
