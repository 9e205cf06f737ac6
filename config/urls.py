from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from booking import pages
from config import login

# an error around the API's views (a middleware's, a path no URL matches) is JSON there too, with the codes
# of DRF's own handler, which covers those inside them; pages keep Django's error pages
handler400 = "booking.api.errors.bad_request_page"
handler403 = "booking.api.errors.permission_denied_page"
handler404 = "booking.api.errors.page_not_found_page"
handler500 = "booking.api.errors.server_error_page"

urlpatterns = [
    path("", pages.landing, name="landing"),
    # pages link the icon; browsers still ask for /favicon.ico on pages that do not (the admin, JSON)
    path("favicon.ico", RedirectView.as_view(url=static("baton/favicon.svg"), permanent=True)),
    # both sign-in pages limit password guessing (LOGIN_RATE_LIMIT); the admin's own is taken over first
    path("admin/login/", login.admin_login),
    path("admin/", admin.site.urls),
    # reps sign in here to connect their calendars: the admin's login takes staff only
    path("accounts/login/", login.rep_login, name="login"),
    # (the admin's own logout keeps its page: a global LOGOUT_REDIRECT_URL sent admins to the reps' sign-in)
    path("accounts/logout/", auth_views.LogoutView.as_view(next_page="login"), name="logout"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path(
        "api/redoc/",
        SpectacularRedocView.as_view(url_name="api-schema", template_name="api/redoc.html"),
        name="api-redoc",
    ),
    path("api/v1/", include("leads.api")),  # before booking's catch-all 404
    path("api/v1/", include("booking.api_urls")),
    path("calendars/", include("calendars.urls")),
    path("insights/", include("insights.urls")),
    path("", include("booking.page_urls")),
]
