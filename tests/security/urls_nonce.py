"""A page with a nonce'd inline script, to show how console templates comply with the CSP."""

from django.http import HttpResponse
from django.template import RequestContext, Template
from django.urls import path

PAGE = Template('<script nonce="{{ CSP_NONCE }}">window.ok = 1;</script>')


def nonce_page(request):
    return HttpResponse(PAGE.render(RequestContext(request)))


urlpatterns = [path("nonce/", nonce_page)]
