"""Entry point: `streamlit run app/main.py` (or `shadowtutor app`).

Checks the database schema, logs the user in, and shows the pages of the user's role.
Every page is registered with the router so that opening one by its address reaches the
page's own role check and a clear refusal; the menu lists only the role's pages.
"""

from __future__ import annotations

import streamlit as st

from shadowtutor import db
from shadowtutor.app import auth, deps, icon, layout, registry
from shadowtutor.app.text import md

# The icon is drawn here: a Material icon name would make the browser fetch it from Google's
# font servers, and nothing the app serves may reach an outside host.
st.set_page_config(
    page_title="ShadowTutor",
    page_icon=icon.favicon(),
    layout="wide",
    initial_sidebar_state=layout.SIDEBAR_PX,
)
layout.tighten()

status = db.schema_status(deps.settings().db_url)
if not status.ok:
    st.error(status.message())
    st.stop()

user = auth.current_user()
auth.follow_redirect()
if user is None:
    auth.login_form()
    st.stop()

pages = {
    spec.key: st.Page(
        str(spec.path),
        title=spec.title,
        icon=spec.icon,
        url_path=spec.key,
        default=spec.key == "home",
    )
    for spec in registry.PAGES
}
nav = st.navigation(list(pages.values()), position="hidden")

layout.close_sidebar_on_mobile()
with st.sidebar:
    st.markdown(f"**{md(user.display_name)}** · {user.role}")
    section = None
    for spec in registry.pages_for(user.role):
        if spec.section != section:
            section = spec.section
            st.caption(section)
        st.page_link(pages[spec.key], label=spec.title, icon=spec.icon)
    st.divider()
    if st.button("Log out", icon=":material/logout:"):
        auth.logout()
        st.rerun()

# Right after a login, the page first asked for (a deep link): the run after the login
# form's starts at Home.
landing = auth.landing_path()
if landing is not None:
    key = registry.page_at(landing, st.get_option("server.baseUrlPath"))
    if key is not None and key != "home":
        st.switch_page(pages[key])
auth.claim_cookie()

# An address that names no page (a typo, an old bookmark) lands on Home: say so, once.
typed = registry.unknown_page(auth.requested_path(), st.get_option("server.baseUrlPath"))
if typed and nav.url_path == "" and st.session_state.get("unknown_page_said") != typed:
    st.session_state["unknown_page_said"] = typed
    st.warning(f"There is no page at /{md(typed)}: here is Home. The menu lists your pages.")

nav.run()
